package checker

// IndentJSON is indentJSON, for the fuzz test.
var IndentJSON = indentJSON

// AppendDomainJSON is appendDomainJSON, for the test that holds it to
// encoding/json.
var AppendDomainJSON = appendDomainJSON
