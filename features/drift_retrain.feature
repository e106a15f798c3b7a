Feature: Drift detection and automatic retraining
  As the owner of a model in production I want the serving platform to notice when the inputs it
  receives no longer look like the data the model was trained on, retrain the model on recent
  labelled outcomes without anyone stepping in, and roll the better model out while users keep
  sending requests. Noise must not trigger anything, and a retrained model that does no better
  than the serving one must never replace it.

  Background:
    Given the demo model with versions "1"
    And a cluster with 1 worker serving demo version "1" and a drift trainer checking every 0.5 seconds

  Scenario: Traffic like the training data raises no drift and starts no retraining
    When 600 rows of baseline traffic are sent to demo with labels from a changed relationship
    Then the trainer reports no drift for demo
    And no retraining run of demo has started
    And 5 inference requests for demo are all answered by version "1"

  Scenario: A drifted feature is detected and a retrained version is rolled out without a manual step
    When users keep sending rows with feature 2 shifted by 0.3 standard deviations to demo with labels from a changed relationship
    Then the trainer reports drift on feature 2 of demo only
    And a retraining run of demo completes without a manual step
    And a new artifact of demo exists with a checksum different from version "1"
    And the catalog lists demo version "2" with parent version "1"
    And the labelled traffic is answered by version "2" within 60 seconds of the first drifted request
    And while the retrained version was rolled out every labelled request was answered successfully
    And the production version of demo is "2"
    And 5 inference requests for demo are all answered by version "2"

  Scenario: A shift too small to matter triggers nothing
    When 600 rows with feature 2 shifted by 0.02 standard deviations are sent to demo with labels from a changed relationship
    Then the trainer reports no drift for demo
    And no retraining run of demo has started
    And 5 inference requests for demo are all answered by version "1"

  Scenario: A retrained model that does no better is rejected and the old version keeps serving
    When 600 rows with feature 2 shifted by 0.3 standard deviations are sent to demo with labels from the serving model's own answers
    Then the trainer reports drift on feature 2 of demo only
    And the retraining run of demo is rejected with a reason saying "is not below the serving version's"
    And the catalog lists only version "1" of demo
    And the production version of demo is "1"
    And 5 inference requests for demo are all answered by version "1"
