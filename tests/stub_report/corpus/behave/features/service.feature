Feature: A service, as behave reads it

  Background:
    Given the service "web" is started

  Scenario: lower-case keywords and a doc string in single quotes
    when a note is taken
    then the note is there
    And the service answers
    * the service exited cleanly
    Then the system is up
    Given the system is degraded
    When the switch is on
      '''
      a doc string behave accepts
      '''

  Rule: flags

    Background:
      Given the flag is raised

    Scenario: the flag
      Then the flag is still raised
      And nothing is written yet

  Scenario Outline: probes
    When the port <port> is probed
    Then the probe answered
    And a step nobody wrote for <port>

    Examples:
      | port |
      | 9    |
      | 10   |

  Scenario: cucumbers
    Given I have 3 cucumbers in my basket
    Then the bag is checked
