Feature: Loading and unloading model versions through the repository
  The repository extension of the Open Inference Protocol loads a new version of a model while users keep
  sending requests, and unloads a model. Loading must lose no request: for a client, an error or a "not
  ready" during the load is a lost request. Afterwards only the new version answers, with its own
  outputs. Unloading must let the requests already running finish.

  Background:
    Given the demo model with versions "1" and "2"
    And the target serves demo version "1"

  Scenario: A new version is loaded while 50 users send requests, and none is lost
    Given 50 users send inference requests for demo continuously
    When demo version "2" is loaded
    Then during the rollout every request was answered successfully
    And during the rollout the p99 latency is below 1500 ms over at least 100 requests
    And after the rollout only version "2" answered

  Scenario: Unloading lets the request in flight finish
    Given a request for demo that takes about 2 seconds is in flight
    When demo is unloaded
    Then the request in flight was answered successfully after the unload began, with its outputs
