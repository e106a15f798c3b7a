Feature: Zero-downtime hot-swap under load
  As a release engineer I swap the production version of a model while users keep sending
  requests. Nobody may notice: no server errors, no lost connections, latency within the SLO,
  both versions answer while the swap is under way and only the new one afterwards; a swap under load
  takes less than a minute and a rollback less than 30 seconds (the seed's bounds). A swap to
  a broken artifact must leave the old version serving and say clearly what went wrong.

  Background:
    Given the demo model with versions "1" and "2"
    And a cluster with 2 workers serving demo version "1"
    And demo version "2" is registered in the catalog

  Scenario: Swap from version 1 to version 2 under continuous load
    Given 50 users send inference requests for demo continuously
    When I swap demo to version "2"
    Then the swap of demo succeeds
    And the swap of demo took less than 60 seconds
    And during the swap every request was answered successfully
    And during the swap the p99 latency is below 1500 ms over at least 100 requests
    And during the swap versions "1" and "2" answered
    And after the swap only version "2" answered
    And the production version of demo is "2"

  Scenario Outline: A swap to a <problem> artifact keeps version 1 serving
    Given demo version "3" is registered with a <problem> artifact
    And 50 users send inference requests for demo continuously
    When I swap demo to version "3"
    Then the swap of demo is refused with an error saying "<reason>"
    And during the swap every request was answered successfully
    And after the swap only version "1" answered
    And the production version of demo is "1"

    Examples:
      | problem | reason                 |
      | corrupt | not a valid ONNX model |
      | missing | not found              |

  Scenario: Roll back from version 2 to version 1 under continuous load
    Given demo has been swapped to version "2"
    And 50 users send inference requests for demo continuously
    When I roll back demo
    Then the rollback of demo succeeds
    And the rollback of demo took less than 30 seconds
    And during the rollback every request was answered successfully
    And during the rollback the p99 latency is below 1500 ms over at least 100 requests
    And during the rollback versions "2" and "1" answered
    And after the rollback only version "1" answered
    And the production version of demo is "1"
