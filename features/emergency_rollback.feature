Feature: Emergency rollback
  As the owner of a model in production I want a release that starts failing to be rolled back without
  anyone stepping in: an alert rule on the error rate of the production version fires, and the model is
  back on the version before within 1 second of the alert (the seed's bound is 30 s). No request is lost
  beyond those the failing version answered before it was rolled back. A manual rollback says who asked
  and why.

  Background:
    Given the demo model with versions "1" and "2"
    And a cluster with 2 workers serving demo version "1"
    And demo version "2" is registered in the catalog
    And demo has been swapped to version "2"

  Scenario: A release that fails under load is rolled back by the alert within 1 second
    Given a demo version "3" that fails 30 % of requests is registered in the catalog
    And demo rolls back when its production version's error rate exceeds 10 % over 5 seconds with at least 20 requests
    And 8 clients keep sending inference requests with varied inputs to demo
    When I swap demo to version "3"
    Then within 30 seconds the alert on demo fires and demo is rolled back to version "2"
    And demo was back on version "2" within 1 second of the alert
    And no request failed except those the failing version answered before it was rolled back
    And every answer's outputs are what the version that answered computes for its input
    And the audit trail has a "alert_fired" entry for demo by "alert" whose reason mentions "error rate of demo version 3"
    And the audit trail has a "rollback" entry for demo by "alert" whose reason mentions "above 10.0%"

  Scenario: A manual rollback records who asked and why
    When I roll back demo because "customers report wrong prices"
    Then the rollback of demo succeeds
    And the production version of demo is "1"
    And 20 inference requests for demo are all answered by version "1"
    And the audit trail has a "rollback" entry for demo by "admin" whose reason mentions "customers report wrong prices"
