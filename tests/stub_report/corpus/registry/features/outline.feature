@capability
Feature: Churn and partitions

  Background:
    Given a cluster with 3 workers
    And the network is stable

  Scenario Outline: kill workers
    When I send 2 inference requests
    And I kill <count> workers
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
      Given the network is healthy
      And a docstring then pass
      When I send 2 inference requests
        | model | version |
        | demo  | 1       |
      And 100 requests are sent over 10 seconds
      And the database is corrupted
      And a step raises not implemented
      And a todo step
      Then the model color is red
      And the p99 latency is under 200 ms
      And the swap window was recorded
      And it fakes a touch
      And a step skipped as pending
      And the alpha flag is set
      And the beta flag is set
      And a typed count of 4 items
      And the hive is marked unreachable
        """
        a docstring argument
        """

    Scenario: module state
      When I swap the model
      And I roll back the model
      And I pretend to swap
      Then the swap succeeded
      And the pretend swap worked

    Scenario: what the audit is for
      When a mock gateway answers
      And events are appended
      And a registry object step runs
      Then the flag matches with hamcrest
      And the literal [1, 2] parses
      And a skip in the middle
      And the docs site answers
