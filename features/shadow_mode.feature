Feature: Shadow mode
  As a data scientist I let a candidate version see production traffic without any client noticing: a
  copy of (almost) every request goes to the shadow version, its answers are compared with the
  primary's and never returned. Clients get only the primary's answers, computed by the primary model,
  and a shadow that fails or is slow changes nothing for them. Tolerance for "almost": at least 99 % of
  the requests reach the shadow, counted by the workers themselves. The agreement rate the gateway
  reports must be what the two model files imply for the inputs sent.

  Background:
    Given the demo model with versions "1" and "2"
    And a cluster with 2 workers serving demo version "1"
    And demo version "2" is registered in the catalog

  Scenario: Clients get only the primary's answers while the shadow gets a copy of every request
    Given 8 clients keep sending inference requests with varied inputs to demo
    When demo shadows its traffic to version "2" with a tolerance of 2
    And 8 clients send 1000 inference requests with varied inputs to demo
    Then every answer since the shadow began came from version "1"
    And the workers served the shadow a copy of at least 99 % of the requests sent since it began
    And the agreement rate the gateway reports for demo's shadow is what the two versions' outputs imply

  Scenario Outline: A shadow that <misbehaviour> changes nothing for clients
    Given a demo version "3" that <misbehaviour> is registered in the catalog
    And 8 clients keep sending inference requests with varied inputs to demo
    When 8 clients send 400 inference requests with varied inputs to demo
    And demo shadows its traffic to version "3" with a tolerance of 0.000001
    And 8 clients send 400 inference requests with varied inputs to demo
    Then every answer since the shadow began came from version "1"
    And while shadowing the p99 latency stays below 1500 ms and the median at most 100 ms above the median before
    And the workers served the shadow a copy of at least 99 % of the requests sent since it began

    Examples:
      | misbehaviour           |
      | fails 50 % of requests |
      | is 300 ms slower       |
