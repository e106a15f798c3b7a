Feature: Load profiles judged against an environment's SLO
  A load profile is data (fixtures/load_profiles.toml): a shape (users sustained, ramped up, or a
  spike), the endpoints with their weights, timeouts. It runs against the model with the model's own
  requests; the environment's SLO table bounds the p50, p95 and p99 latency, each judged only over at
  least its minimum number of samples, and the error rate. A fast answer is no good answer unless it
  was computed by the version it names, also while the version changes under the load. Every run leaves
  a report under reports/load: latency, throughput and errors over time, a swap's window, beside the CPU
  and memory of the services.

  Background:
    Given the demo model with versions "1" and "2"
    And the target serves demo version "1"

  Scenario Outline: The <shape> profile meets the staging SLO
    When the "<profile>" load profile runs against demo
    Then the staging SLO of the run is met

    Examples:
      | shape     | profile         |
      | sustained | short_sustained |
      | ramp      | short_ramp      |
      | spike     | short_spike     |

  Scenario: A hot swap under the spike profile meets the staging SLO
    Given demo version "2" is registered in the catalog
    And the "short_spike" load profile runs against demo
    When I swap demo to version "2"
    Then the staging SLO of the run is met
    And during the swap versions "1" and "2" answered
    And after the swap only version "2" answered
