Feature: Out of memory
  A worker must never take more memory than it is given. Its own memory budget refuses a model too
  large for it, says why, and the worker keeps serving what it had. When its budget is off, the
  kernel's memory limit is what stops it: the kernel kills the worker, the gateway says clearly that
  the swap failed on that worker, forgets the dead worker, and the other workers keep serving.
  Sizes are decimal megabytes; the large model's weights really take that much memory.

  Background:
    Given the demo model with versions "1"

  Scenario: The worker's memory budget refuses a model larger than the budget
    Given a cluster with 1 worker with a memory budget of 100 MB serving demo version "1"
    And a large demo version "3" of 300 MB is registered in the catalog
    When I swap demo to version "3"
    Then the swap of demo is refused as over the memory budget, naming the model, its size and the budget
    And 20 inference requests for demo are all answered by version "1"
    And the production version of demo is "1"
    And no worker holds demo version "3"
    And the gateway's registry matches the running workers

  Scenario: The memory budget counts the models a worker already holds
    Given a cluster with 1 worker with a memory budget of 100 MB serving demo version "1"
    And a large demo version "3" of 60 MB is registered in the catalog
    And a large demo version "4" of 60 MB is registered in the catalog
    And demo has been swapped to version "3"
    When I swap demo to version "4"
    Then the swap of demo is refused as over the memory budget, naming the model, its size and the budget
    And 20 inference requests for demo are all answered by version "3"
    And no worker holds demo version "4"

  Scenario: Without a budget, the kernel kills a worker that loads past its memory limit
    Given a cluster with 2 workers without a memory budget serving demo version "1" and a heartbeat every 0.5 seconds
    And a large demo version "3" of 300 MB is registered in the catalog
    And the kernel limits the memory of one worker to 150 MB
    When I swap demo to version "3"
    Then the kernel killed that worker for exceeding its memory limit
    And the swap of demo is refused with an error naming the worker that died
    And within 5 seconds the gateway lists 1 worker
    And the gateway's registry matches the running workers
    And 20 inference requests for demo are all answered by version "1"
    And the production version of demo is "1"
    And no worker holds demo version "3"
    And the killed worker left no process behind
