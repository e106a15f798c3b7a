Feature: Worker churn
  Workers come and go: the cluster scales out, workers are shut down gracefully or crash. The
  gateway's registry must list exactly the workers that run, each under its own id, with no
  orphans left once a dead worker's heartbeats have expired, and requests keep succeeding as
  long as one worker serves the model. The heartbeat is short enough for expiry to happen within a
  scenario, and long enough (a worker expires after 3 missed beats: 2.4 s) that a running worker is not
  expired while others boot on a busy 2-core machine.

  Background:
    Given the demo model with versions "1"
    And a cluster with 1 worker serving demo version "1" and a heartbeat every 0.8 seconds

  Scenario: Workers spawned at the same time each get their own id
    When 4 more workers start at the same time
    Then the gateway lists 5 workers
    And every listed worker has its own id
    And the gateway's registry matches the running workers

  Scenario Outline: Workers that are <stopped> leave the registry
    Given 2 more workers start at the same time
    When 2 workers are <stopped>
    Then within 5 seconds the gateway lists 1 worker
    And the gateway's registry matches the running workers
    And 20 inference requests for demo are all answered by version "1"

    Examples:
      | stopped            |
      | stopped gracefully |
      | killed             |

  Scenario: Requests keep succeeding while workers churn
    Given 2 more workers start at the same time
    And 10 users send inference requests for demo continuously
    When 1 worker is killed
    And 1 worker is stopped gracefully
    And 2 more workers start at the same time
    Then within 5 seconds the gateway lists 3 workers
    And every listed worker has its own id
    And the gateway's registry matches the running workers
    And during the load no request failed with a server error or a lost connection
