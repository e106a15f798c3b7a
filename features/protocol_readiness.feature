Feature: Readiness tells the truth
  A load balancer sends traffic to a server as soon as it says it is ready. "Ready" must therefore mean
  that inference succeeds at once, and a server or model that cannot serve must not claim to be ready:
  not the model once it is unloaded, not the server while no model is loaded.

  Background:
    Given the demo model with versions "1" and "2"
    And the target serves demo version "1"

  Scenario: A server and model that report ready answer at once
    Then the server and demo report ready, and a request sent at once succeeds

  Scenario: An unloaded model is not ready, and is ready again once loaded
    When demo is unloaded
    Then demo reports not ready
    And the server reports not ready while no model is loaded
    And a request for demo is refused without a server error
    Given readiness of the server and demo is probed continuously
    When demo version "1" is loaded
    Then within 30 seconds demo reports ready again
    And whenever the server or demo reported ready, a request sent at once succeeded
