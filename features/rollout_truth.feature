Feature: A swap or a rollback does what it acknowledges
  A release engineer acts on the gateway's answer: once it says a swap is done, the old artifact may be
  retired and full traffic sent. So a swap is acknowledged only when every worker computes with the new
  version, and a rollback goes back to the version the last swap replaced, whatever came before it.

  Scenario: A swap is acknowledged only once every worker computes with the new version
    Given the demo model with versions "1" and "2"
    And a cluster with 2 workers serving demo version "1"
    And demo version "2" is registered in the catalog
    When I swap demo to version "2" and ask every worker for it as soon as the swap is acknowledged
    Then the swap of demo succeeds
    And every worker computed with version "2" as soon as the swap was acknowledged

  Scenario: With three versions, a rollback returns to the version the last swap replaced
    Given the demo model with versions "1", "2" and "3"
    And a cluster with 2 workers serving demo version "1"
    And demo version "2" is registered in the catalog
    And demo version "3" is registered in the catalog
    And demo has been swapped to version "2"
    And demo has been swapped to version "3"
    When I roll back demo
    Then the rollback of demo succeeds
    And the production version of demo is "2"
    And 20 inference requests for demo are all answered by version "2"
