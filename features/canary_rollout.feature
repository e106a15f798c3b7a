Feature: Canary rollout with automatic rollback
  As a release engineer I hand a new version to the gateway's canary controller: it gets 5 %, then 10,
  25, 50 and finally 100 % of the traffic, each stage held for a while and judged on the canary's own
  error rate and p99 latency as the gateway measured them (its p99 against the stable version's in the
  same window, so that a busy machine weighs on both alike). A healthy canary ends up in production. A
  canary that fails requests or is slow is sent back at the first stage, by the controller alone, and
  the audit trail says why.

  Background:
    Given the demo model with versions "1" and "2"
    And a cluster with 2 workers serving demo version "1"
    And demo version "2" is registered in the catalog
    And canary limits of 1 % errors and a p99 at most 150 ms above the stable version's and never above 2000 ms, judged on at least 30 canary requests per stage

  Scenario: A healthy canary ramps through every stage to 100 % and is promoted
    Given 8 clients keep sending inference requests with varied inputs to demo
    When I start a canary of demo version "2" through stages 5, 10, 25, 50 and 100 % held 2 seconds each
    Then within 120 seconds the canary of demo is promoted
    And at each stage the canary's share of answers lies within the 99 % binomial interval of the stage
    And after the canary of demo ended only version "2" answered
    And every answer's outputs are what the version that answered computes for its input
    And the production version of demo is "2"
    And the audit trail has a "promote" entry for demo by "canary-controller" whose reason mentions "passed every stage"

  Scenario Outline: A canary that <misbehaviour> is rolled back at the first stage
    Given a demo version "3" that <misbehaviour> is registered in the catalog
    And 8 clients keep sending inference requests with varied inputs to demo
    When I start a canary of demo version "3" through stages 5, 10, 25, 50 and 100 % held 2 seconds each
    Then within 60 seconds the canary of demo is rolled back at the 5 % stage
    And the time from the canary's first bad answer to the last request it answered is below 15 seconds
    And after the canary of demo ended only version "1" answered
    And every answer's outputs are what the version that answered computes for its input
    And the production version of demo is "1"
    And the audit trail has a "canary_rollback" entry for demo by "canary-controller" whose reason mentions "<judged on>"

    Examples:
      | misbehaviour           | judged on  |
      | fails 20 % of requests | error rate |
      | is 300 ms slower       | p99        |
