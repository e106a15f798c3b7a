Feature: Worker churn, as seed 004 wrote it

  Background:
    Given a hive with 3 workers

  Scenario: spawn and count
    When 5 workers are spawned
    Then the registry has 5 workers
    And the exit code is 0

  Scenario: partition
    When the network is partitioned
    Then the queen detects the loss
    And the gateway answers 200

  Scenario: the rest
    Given model download fails at 50%
    And a worker registered
    And a worker "w1" exists
    When the worker is restarted
    And the registry is reset
    And the mock hive answers
    And the product computes a plan
    Then nothing is checked
    And a step nobody wrote
