Feature: Faults, load and releases combined
  A release rarely meets one trouble at a time. A swap runs while a worker loses its network, a
  worker dies while an operator rolls back, the catalog's disk fails just before a swap, the
  retrainer rolls a model out while part of the cluster is cut off. In each case the cluster must
  answer quickly and truthfully: go on with the workers it still has, or refuse and say which worker
  failed, and keep serving the users meanwhile.

  Scenario: A worker cut off during a swap under load: the swap goes on with the workers still registered
    Given the demo model with versions "1" and "2"
    And a cluster serving demo version "1" with:
      | workers           | 3                     |
      | heartbeat         | 0.3 seconds           |
      | upstream deadline | 1 second              |
      | links             | accept network faults |
    And demo version "2" is registered in the catalog
    And 20 users send inference requests for demo continuously
    When the network between the gateway and worker-2 is cut
    And I start swapping demo to version "2"
    Then the swap of demo finishes within 5 seconds
    And the swap of demo succeeds
    And within 3 heartbeat intervals the gateway no longer lists worker-2
    And every listed worker holds demo version "2"
    And the production version of demo is "2"
    And during the swap at most 20 requests failed
    And after the swap only version "2" answered
    And no request during the load waited longer than 2 seconds
    When the network between the gateway and worker-2 is restored
    Then within 3 seconds the gateway lists worker-2 again under a new id
    And every listed worker holds demo version "2"

  Scenario: A worker killed as a rollback starts: the rollback is refused fast, naming it, and a retry succeeds
    Given the demo model with versions "1" and "2"
    And a cluster with 3 workers serving demo version "1"
    And the cluster has a heartbeat every 0.3 seconds
    And demo version "2" is registered in the catalog
    And demo has been swapped to version "2"
    When worker-2 is killed
    And I start rolling back demo
    Then the rollback of demo finishes within 5 seconds
    And the rollback of demo is refused with an error naming worker-2
    And the production version of demo is "2"
    And within 3 seconds the gateway lists 2 workers
    When I roll back demo
    Then the rollback of demo succeeds
    And every listed worker holds demo version "1"
    And 20 inference requests for demo are all answered by version "1"

  Scenario: A swap right after the catalog database file was damaged, then a gateway restart
    Given the demo model with versions "1" and "2"
    And a cluster with 2 workers serving demo version "1"
    And demo version "2" is registered in the catalog
    And the gateway has backed up its catalog
    And 10 users send inference requests for demo continuously
    When the catalog database file is damaged by overwriting its header
    And I swap demo to version "2"
    Then the swap of demo succeeds
    And during the swap every request was answered successfully
    And after the swap only version "2" answered
    And within 10 seconds the gateway has repaired its catalog database
    When the gateway is restarted and its workers have registered again
    Then the production version of demo is "2"
    And every listed worker holds demo version "2"

  Scenario: A version over the workers' memory budget is refused while 50 users are served
    Given the demo model with versions "1"
    And a cluster with 2 workers serving demo version "1"
    And the cluster's workers have a memory budget of 100 MB
    And a large demo version "3" of 300 MB is registered in the catalog
    And 50 users send inference requests for demo continuously
    When I swap demo to version "3"
    Then the swap of demo is refused as over the memory budget, naming the model, its size and the budget
    And during the swap every request was answered successfully
    And after the swap only version "1" answered
    And no worker holds demo version "3"
    And the production version of demo is "1"

  Scenario: Drift retraining rolls a new version out while a worker is cut off, which gets it once back
    Given the demo model with versions "1"
    And a cluster with 2 workers serving demo version "1"
    And the cluster's links accept network faults
    And the cluster has a heartbeat every 0.3 seconds
    And the cluster has an upstream deadline of 1 second
    And the cluster has a drift trainer checking every 0.5 seconds
    When the network between the gateway and worker-2 is cut
    Then within 3 heartbeat intervals the gateway no longer lists worker-2
    When users keep sending rows with feature 2 shifted by 0.3 standard deviations to demo with labels from a changed relationship
    Then the trainer reports drift on feature 2 of demo only
    And a retraining run of demo completes without a manual step
    And the retraining of demo finishes within 60 seconds
    And the labelled traffic is answered by version "2" within 60 seconds of the first drifted request
    And while the retrained version was rolled out every labelled request was answered successfully
    And every listed worker holds demo version "2"
    When the network between the gateway and worker-2 is restored
    Then within 3 seconds the gateway lists worker-2 again under a new id
    And every listed worker holds demo version "2"
    And 10 inference requests for demo are all answered by version "2"

  Scenario Outline: A swap under load with <workers> reaches every worker
    Given the demo model with versions "1" and "2"
    And a cluster with <workers> serving demo version "1"
    And demo version "2" is registered in the catalog
    And 20 users send inference requests for demo continuously
    When I swap demo to version "2"
    Then the swap of demo succeeds
    And the swap of demo finishes within 5 seconds
    And during the swap every request was answered successfully
    And the gateway lists <workers>
    And every listed worker holds demo version "2"

    Examples:
      | workers   |
      | 1 worker  |
      | 3 workers |

  Scenario: Latency stays within the SLO after workers churn
    Given the demo model with versions "1"
    And a cluster with 3 workers serving demo version "1" and a heartbeat every 0.3 seconds
    When worker-2 is killed
    And worker-3 is stopped gracefully
    And 1 more worker starts
    Then within 3 seconds the gateway lists 2 workers
    And the gateway's registry matches the running workers
    When 200 requests for demo are sent evenly over 10 seconds
    Then all 200 requests were answered successfully
    And none of them timed out, no 408 and no 504
    And their p99 latency is below 500 ms

  Scenario: With its PostgreSQL catalog down, a swap changes nothing and users keep being served
    Given the demo model with versions "1" and "2"
    And a cluster with 2 workers serving demo version "1"
    And the cluster keeps its catalog in a PostgreSQL server
    And demo version "2" is registered in the catalog
    And 10 users send inference requests for demo continuously
    When the catalog database server is killed
    And I swap demo to version "2"
    Then the swap of demo is refused saying "catalog database unavailable"
    And during the swap every request was answered successfully
    And after the swap only version "1" answered
    And no worker holds demo version "2"
    When the catalog database server is restarted
    Then within 10 seconds the gateway has repaired its catalog database
    When I swap demo to version "2"
    Then the swap of demo succeeds
    And every listed worker holds demo version "2"
