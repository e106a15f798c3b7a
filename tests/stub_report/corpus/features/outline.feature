@capability
Feature: Churn and partitions

  Background:
    Given a cluster with 3 workers
    And the network is stable

  Scenario Outline: kill workers
    When I kill <count> workers
    And a worker restarts
    And the worker is restarted
    And I pause the gateway
    And I resume the gateway
    Then every answer has status <status>

    Examples:
      | count | status |
      | 1     | 200    |
      | 2     | 503    |

  Rule: partitions

    @slow
    Scenario: flags
      When the network is partitioned
      Then the hive is marked unreachable
      * the value it set is true
      But a placeholder logs

    Scenario: table and docstring
      Given a pytest-bdd cluster of 2
      And a docstring then pass
      When I send 2 inference requests
        | model | version |
        | demo  | 1       |
      And the operator waits 1 seconds
      And 100 requests are sent over 10 seconds
      And the database is corrupted
      And a step raises not implemented
      And a todo step
      Then the model color is red
      And the p99 latency is under 200 ms
      And the swap window was recorded
      And it fakes a touch
      And a step skipped as pending
      And the plain string step holds
      And the tags are red, blue
      And the alpha flag is set
      And the beta flag is set
      And a typed count of 4 items
      And the hive is marked unreachable
        """
        a docstring argument
        """

    Scenario: behave steps
      Given behave has 3 things
      When behave calls the gateway service
      And behave is pending
      Then behave sees the table
        | a |
        | b |

    Scenario: module state
      When I swap the model
      And I roll back the model
      And I pretend to swap
      Then the swap succeeded
      And the pretend swap worked
