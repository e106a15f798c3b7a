Feature: A/B testing between two versions
  As a data scientist I split the traffic of a model between its production version and a challenger,
  90 % to 10 %. Each version must get its share (within the sampling noise of a 99 % binomial interval,
  over at least 1,000 requests), each answer must be computed by the version it names, and both
  versions' latency and errors are reported side by side. Then I promote the winner: from that moment
  only the winner answers.

  Background:
    Given the demo model with versions "1" and "2"
    And a cluster with 2 workers serving demo version "1"
    And demo version "2" is registered in the catalog

  Scenario: A 90/10 split is honoured and the winner is promoted to 100 %
    When demo routes 90 % of its traffic to version "1" and 10 % to version "2"
    And 8 clients send 1200 inference requests with varied inputs to demo
    Then the share of answers from each version lies within the 99 % binomial interval of its weight
    And every answer's outputs are what the version that answered computes for its input
    And each version's latency and error figures are reported, and the gateway counted the same answers per version as the clients
    When I promote demo version "2" as the winner
    Then the production version of demo is "2"
    And 50 requests with varied inputs to demo are all answered by version "2" with its own outputs
    And the audit trail has a "set_policy" entry for demo by "admin" whose reason mentions "A/B test"
    And the audit trail has a "promote" entry for demo by "admin" whose reason mentions "won the A/B test"
