Feature: Lineage of model versions
  As a data scientist I want to know where a version comes from: a base model, a fine-tuned child, a
  grandchild. Each version may name its parent when it is registered; the catalog answers who its
  ancestors and descendants are, refuses a parent it does not know, and a version retrained after drift
  appears as a child of the version it replaced.

  Scenario: A base version, a fine-tuned child and a grandchild
    Given the demo model with versions "1", "2" and "3"
    And a cluster with 1 worker serving demo version "1"
    And demo version "2" is registered in the catalog as a child of version "1"
    And demo version "3" is registered in the catalog as a child of version "2"
    Then the parent of demo version "2" is "1"
    And the parent of demo version "3" is "2"
    And demo version "1" has no parent
    And the ancestors of demo version "3" are "2" and "1"
    And the descendants of demo version "1" are "2" and "3"
    And the descendants of demo version "2" are "3"

  Scenario: A version naming an unknown parent is refused
    Given the demo model with versions "1" and "2"
    And a cluster with 1 worker serving demo version "1"
    When I register demo version "2" as a child of version "9"
    Then the registration is refused because parent version "9" is unknown
    And the catalog does not list demo version "2"

  Scenario: A version retrained after drift is a child of the version it replaced
    Given the demo model with versions "1"
    And a cluster with 1 worker serving demo version "1" and a drift trainer checking every 0.5 seconds
    When users keep sending rows with feature 2 shifted by 0.3 standard deviations to demo with labels from a changed relationship
    Then a retraining run of demo completes without a manual step
    And the parent of demo version "2" is "1"
    And the ancestors of demo version "2" are "1"
    And the descendants of demo version "1" are "2"
