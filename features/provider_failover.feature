Feature: Provider failover with a lock and an audit trail
  A model can be served by several providers in priority order (here: pools of workers). Exactly one
  provider holds the model's lock and answers, and every answer names it. The gateway moves the lock
  only on the provider's own failures (no connection, a timeout, 5xx, 429, 401/403), after a number of
  them in a row, and fails back to a better provider only once that one has stayed healthy for the hold
  time. Every move is in a bounded audit trail, and the lock survives a restart of the gateway.

  Background:
    Given the demo model with versions "1"
    And a cluster serving demo version "1" with providers "primary" (2 workers) and "backup" (1 worker)
    And failover after 3 consecutive failures with a hold time of 4 seconds

  Scenario Outline: The primary's workers <fault>: the backup takes over at once, clients hardly notice
    Given 5 users send inference requests for demo continuously
    When the workers of provider "primary" <fault>
    Then within 5 seconds provider "backup" holds the lock of demo
    And the lock of demo moved once
    And during the load at most the failure threshold of requests failed
    And every answer during the load names the provider that held the lock of demo at that moment

    Examples:
      | fault                        |
      | are killed                   |
      | are cut off from the gateway |
      | answer 503                   |
      | answer 429                   |

  Scenario: A client sending bad input 100 times does not trigger a failover
    When a client sends 100 inference requests for demo with bad input
    Then every one of them is answered 400 by provider "primary"
    And provider "primary" counted 100 client errors and no failure
    And provider "primary" holds the lock of demo
    And the lock of demo moved never

  Scenario: The primary comes back and gets the lock back after the hold time, once
    Given 5 users send inference requests for demo continuously
    When the workers of provider "primary" are killed
    Then within 5 seconds provider "backup" holds the lock of demo
    When the workers of provider "primary" are restarted
    Then provider "primary" gets the lock of demo back after the hold time, within 12 seconds
    And the lock of demo moved twice
    And every answer during the load names the provider that held the lock of demo at that moment

  Scenario: A flapping primary loses the lock at most once per hold period
    Given 5 users send inference requests for demo continuously
    When the workers of provider "primary" go down and up every second for 8 seconds
    Then while it flapped the lock of demo failed over at most once per hold period
    And every answer during the load names the provider that held the lock of demo at that moment

  Scenario: The gateway restarted mid-run keeps the lock and the counters, and the audit tells it all
    Given 5 users send inference requests for demo continuously
    When the workers of provider "primary" answer 503
    Then within 5 seconds provider "backup" holds the lock of demo
    When the gateway restarts
    Then provider "backup" still holds the lock of demo with its counters
    And the audit trail of demo tells in order: acquire, failover, lock_restored
