Feature: Our own server speaks the Open Inference Protocol
  The harness's vocabulary and one step of this project, in one scenario, against whatever target the
  run names (MLServer started by the harness, or a deployment described by a profile).

  Scenario: The server describes itself and answers with the outputs of the version it names
    Given the demo model with versions "1" and "2"
    And the target serves demo version "1"
    Then the server names itself and its protocol extensions in its metadata
    When 10 inference requests for demo are sent one after the other
    Then every answer carries its request's id
    And every answer was computed by the version it names
