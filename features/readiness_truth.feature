Feature: Readiness tells the truth while the cluster comes up
  A load balancer sends traffic to the cluster the moment it says it is ready. So the gateway must not
  say so before a worker has loaded the model, and from the moment it says so every request must be
  served. Readiness is watched continuously while a worker starts and loads a model large enough to
  take a while: each time the server or the model says ready, a request is sent at once.

  Scenario: The cluster is not ready until a worker has loaded the model, then serves at once
    Given a large demo version "1" of 60 MB
    And a gateway without workers, with demo version "1" in production
    And readiness of the server and demo is probed continuously
    When a worker is started without waiting for it
    Then within 60 seconds the server and demo report ready
    And the probes saw the server and demo not ready at first, then ready
    And whenever the server or demo reported ready, a request sent at once succeeded
