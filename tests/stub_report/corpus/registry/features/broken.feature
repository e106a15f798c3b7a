Feature: Broken

  Scenario: bad indentation of a table
    Given a cluster with 3 workers
  this line is not Gherkin at all
    | unclosed
