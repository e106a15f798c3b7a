Feature: A worker dies during a long inference and is restarted
  A worker can be killed in the middle of a long request. Its client must get a clear error
  quickly, not wait for an answer that will never come. The worker is then restarted: it
  registers again under a new id and serves new requests, and the gateway's registry keeps
  neither a duplicate nor a stale entry for it.

  Background:
    Given the slow model with version "1"
    And a cluster with 1 worker serving slow version "1" and a heartbeat every 0.3 seconds

  Scenario: The client of a killed worker gets a quick error and the restarted worker serves again
    Given a request for slow with a batch that takes about 4 seconds is in flight on its worker
    When the worker running it is killed
    Then the request is answered 502 or 503 within 2 seconds of the kill, with an error naming slow
    When the killed worker is restarted
    Then the gateway lists the restarted worker under a new id
    And within 3 seconds the gateway lists 1 worker
    And every listed worker has its own id
    And the gateway's registry matches the running workers
    And 5 inference requests for slow are all answered by version "1"
