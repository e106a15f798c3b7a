Feature: Concurrency storms
  Many things happen at once in a real cluster: after a gateway hiccup every worker registers again
  in the same instant, and users send many requests together. Each of 50 real worker processes must
  get its own id and the registry must describe exactly the workers that run; each of 200 concurrent
  requests must get exactly one answer, carrying its own id. The 51 workers heartbeat every 2 seconds:
  on a busy 2-core machine a live worker must not be expired (6 s without a beat) while 50 others boot.

  Background:
    Given the demo model with versions "1"

  Scenario: 50 workers register at once
    Given a cluster with 1 worker serving demo version "1" and a heartbeat every 2 seconds
    And 50 more workers start while the gateway is paused
    When the gateway resumes and the waiting workers register at once
    Then within 30 seconds the gateway lists 51 workers
    And every listed worker has its own id
    And the gateway's registry matches the running workers
    And the registry stays unchanged for 3 heartbeat intervals

  Scenario: 200 concurrent requests are each answered once with their own id
    Given a cluster with 2 workers serving demo version "1"
    When 200 inference requests for demo are sent at the same time, each with its own id
    Then each of the 200 requests was answered once, with its own id
