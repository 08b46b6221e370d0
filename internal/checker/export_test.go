package checker

// IndentJSON is indentJSON, for the fuzz test.
var IndentJSON = indentJSON
