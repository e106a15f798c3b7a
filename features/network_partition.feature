Feature: Network partition between the gateway and a worker
  A worker can lose its network link to the gateway while its process keeps running, and neither
  side is told. The gateway must notice by itself, from the missed heartbeats, and stop sending the
  worker requests within 3 heartbeat intervals. Clients keep being served by the other workers or,
  when none is left, get a clear "unavailable" answer that names the model. Once the link is back,
  the worker serves again. A link slower than the gateway's deadline must never leave a client
  waiting: the gateway answers in time with a timeout or an "unavailable" error.

  Background:
    Given the demo model with versions "1"

  Scenario: The gateway stops routing to a worker it can no longer reach
    Given a cluster with 2 workers serving demo version "1", a heartbeat every 0.3 seconds and an upstream deadline of 1 second
    And 5 users send inference requests for demo continuously
    When the network between the gateway and worker-2 is cut
    Then within 3 heartbeat intervals the gateway no longer lists worker-2
    And worker-2 is still running
    And every request sent after the gateway dropped worker-2 was answered successfully
    And no request during the load waited longer than 2 seconds

  Scenario: With its only worker cut off, the model is reported unavailable
    Given a cluster with 1 worker serving demo version "1", a heartbeat every 0.3 seconds and an upstream deadline of 1 second
    When the network between the gateway and worker-1 is cut
    Then within 3 heartbeat intervals the gateway no longer lists worker-1
    And a request for demo is answered 503 within 1 second, with an error naming demo

  Scenario: Once the network is restored the worker serves again
    Given a cluster with 2 workers serving demo version "1", a heartbeat every 0.3 seconds and an upstream deadline of 1 second
    And the network between the gateway and worker-2 is cut
    And within 3 heartbeat intervals the gateway no longer lists worker-2
    When the network between the gateway and worker-2 is restored
    Then within 3 seconds the gateway lists worker-2 again under a new id
    And every listed worker has its own id
    And inference requests for demo reach worker-2 again

  Scenario: A slow link delays the answers, and beyond the deadline the gateway answers in time
    Given a cluster with 1 worker serving demo version "1", a heartbeat every 0.3 seconds and an upstream deadline of 1 second
    When calls from the gateway to worker-1 are delayed by 200 ms
    Then 10 inference requests for demo all succeed, none faster than 200 ms
    When calls from the gateway to worker-1 are delayed by 3000 ms
    Then 5 inference requests for demo are each answered 504 or 503 within 1.5 seconds
    When the delay on calls from the gateway to worker-1 is removed
    Then 20 inference requests for demo are all answered by version "1"
