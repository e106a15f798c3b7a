Feature: Graduated rollback of a canary
  As a release engineer I do not want a short-lived problem to throw away a rollout, nor a real one to
  stay in front of users. With a graduated rollback, a canary that breaches its limits first loses most
  of its traffic at once; if it still breaches at that share an alert is raised, and it is rolled back
  only when the breach has persisted for the stated time. If the breach ends (here: a slow network that
  heals), the rollout goes on from the stage it was at. Every step is measured from the clients' answers
  and the gateway's audit trail.

  Background:
    Given the demo model with versions "1" and "2"
    And a cluster with 2 workers serving demo version "1"
    And the cluster's links accept network faults
    And demo version "2" is registered in the catalog
    And canary limits of 1 % errors and a p99 at most 150 ms above the stable version's and never above 500 ms, judged on at least 20 canary requests per stage

  Scenario: A canary that keeps failing is reduced, raises an alert, then is rolled back
    Given canary breaches are graduated: the canary's share drops to 5 % and it is rolled back only if the breach persists 4 seconds
    And a demo version "3" that fails 40 % of requests is registered in the catalog
    And 8 clients keep sending inference requests with varied inputs to demo
    When I start a canary of demo version "3" through stages 25, 50 and 100 % held 2 seconds each
    Then within 60 seconds the canary of demo is rolled back after its share was reduced to 5 % for at least 4 seconds
    And at each stage the canary's share of answers lies within the 99 % binomial interval of the stage
    And after the canary of demo ended only version "1" answered
    And every answer's outputs are what the version that answered computes for its input
    And the production version of demo is "1"
    And the audit trail of demo has "canary_reduced", "canary_alert" and "canary_rollback" entries by "canary-controller" in that order
    And the audit trail has a "canary_rollback" entry for demo by "canary-controller" whose reason mentions "persisted"

  Scenario: A canary slowed by a network problem that heals is reduced, then recovers and is promoted
    Given canary breaches are graduated: the canary's share drops to 5 % and it is rolled back only if the breach persists 10 seconds
    And 8 clients keep sending inference requests with varied inputs to demo
    When calls from the gateway to worker-1 are delayed by 700 ms
    And calls from the gateway to worker-2 are delayed by 700 ms
    And I start a canary of demo version "2" through stages 25, 50 and 100 % held 2 seconds each
    Then within 60 seconds the canary of demo is reduced to 5 %
    When the delay on calls from the gateway to worker-1 is removed
    And the delay on calls from the gateway to worker-2 is removed
    Then within 30 seconds the canary of demo recovers at the 25 % stage
    And within 90 seconds the canary of demo is promoted
    And at each stage the canary's share of answers lies within the 99 % binomial interval of the stage
    And every answer's outputs are what the version that answered computes for its input
    And the production version of demo is "2"
    And the audit trail of demo has "canary_reduced", "canary_recovered" and "promote" entries by "canary-controller" in that order
