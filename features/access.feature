Feature: Only the admin token opens the admin API
  The admin API swaps, rolls back, registers and unloads models: whoever can call it controls what users
  are served. Every admin route must refuse a call that does not carry the admin token exactly as agreed
  (a bearer token in the Authorization header), reveal nothing in its refusal, and change nothing. Each
  refused call is one that would have acted: a swap to another version, a new version, an unload.

  Scenario: Every admin route refuses missing, wrong and look-alike tokens, and nothing changes
    Given the demo model with versions "1" and "2"
    And a cluster with 1 worker serving demo version "1"
    And demo version "2" is registered in the catalog
    When every admin route is called for demo with no token, an empty token, a wrong token, the admin token cut short, the admin token with a character added, the admin token in upper case, the admin token under another scheme or the admin token in the query string
    Then every call was refused with 401 or 403, revealing nothing
    And nothing changed: the versions, the production version, the audit trail and what the workers hold
    And with the admin token every admin route answers
