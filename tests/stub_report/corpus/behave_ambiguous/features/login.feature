Feature: Login

  Scenario: a user
    Given the user alice logs in
