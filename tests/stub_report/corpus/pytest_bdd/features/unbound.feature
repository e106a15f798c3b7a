Feature: Nobody binds this feature

  Scenario: never run
    Given a step nobody wrote either
