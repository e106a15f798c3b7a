Feature: Partial binding

  Scenario: the bound one
    Given nothing is configured

  Scenario: not bound
    Given a step in a scenario nobody binds
