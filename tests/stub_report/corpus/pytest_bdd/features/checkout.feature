Feature: Checkout

  Background:
    Given the api is reachable on port 9

  Scenario: the service
    When the host checks its service
    Then the service is running
    And the recorded service ran
    And the recorded service ran, by get
    And we wait 0 seconds

  Scenario: pages and carts
    Given a cart with 2 items
    When the main page is opened
    Then the cart holds 2 items
    And an invisible step runs
    And a step imported by name runs
    And a pending step

  @skip
  Scenario: skipped by a tag
    Then a step nobody wrote
