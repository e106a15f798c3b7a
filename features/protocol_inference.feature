Feature: Inference by the Open Inference Protocol
  Any server that speaks the Open Inference Protocol (KServe V2) must answer a valid request with the
  outputs its metadata declares, computed by the model version it names, and echo the request's id. A
  malformed request must be refused with a 4xx that says what is wrong, never with a server error, and
  the server must keep serving. Its metadata and version listing must agree with what answers.

  Background:
    Given the demo model with versions "1" and "2"
    And the target serves demo version "1"

  Scenario: Answers carry the declared outputs, computed by the version they name
    When 20 inference requests for demo are sent one after the other
    Then every answer has the outputs the model's metadata declares, with their datatypes and shapes
    And every answer carries its request's id
    And every answer was computed by the version it names

  Scenario Outline: A request with <problem> is refused with a 4xx that names the problem
    When a request for demo is sent with <problem>
    Then it is refused with a 4xx whose error mentions <mention>
    And the server still answers valid requests for demo

    Examples:
      | problem                              | mention                                      |
      | a body that is not JSON              | "json"                                       |
      | no inputs                            | "input"                                      |
      | a shape that does not match its data | "shape" or "size"                            |
      | text where numbers belong            | "number" or "float" or "convert" or "data"   |
      | an unknown datatype                  | "datatype" or "FLOAT99"                      |

  Scenario: Metadata and version listing agree with what answers
    Then the metadata of demo declares the inputs the model takes
    And requests for demo are answered by a version its metadata lists
    And a request for demo version "1" is answered by that version
    And a request for demo version "2", which is not served, is not answered by another version
