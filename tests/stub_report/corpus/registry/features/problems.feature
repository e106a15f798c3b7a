Feature: Problems the report must find

  Scenario: undefined and ambiguous
    Given a model named demo
    When I reticulate 3 splines named "main"
    Then a typed count of many items
    And the cluster answers in 1.5 seconds
