package groupidsim

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// writeJSON sends v as JSON without HTML escaping, so stored values come
// back as they were sent.
func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// envelope is the result wrapper GroupID returns from write calls. A
// business failure is reported inside a 200 with a non-zero status.
type envelope struct {
	CurrentDirectoryServer         *string    `json:"currentDirectoryServer"`
	ExceptionMessagesAttributeWise any        `json:"exceptionMessagesAttributeWise"`
	Data                           any        `json:"data"`
	IdentityStoreObject            any        `json:"identityStoreObject"`
	Name                           *string    `json:"name"`
	ErrorCode                      *string    `json:"errorCode"`
	Details                        []envelope `json:"details"`
	Type                           int        `json:"type"`
	Message                        *string    `json:"message"`
	Status                         int        `json:"status"`
}

// Envelope status values used by the simulator.
const (
	envelopeOK     = 0
	envelopeFailed = 1
)

// errObjectNotFound is the errorCode of a write aimed at a missing object.
const errObjectNotFound = "ObjectNotFound"

func strPtr(s string) *string { return &s }

// okEnvelope is a successful result carrying data.
func okEnvelope(data any, message string) envelope {
	return envelope{Data: data, Message: strPtr(message), Details: []envelope{}}
}

// failedEnvelope is a business failure.
func failedEnvelope(code, message string) envelope {
	return envelope{Status: envelopeFailed, ErrorCode: strPtr(code), Message: strPtr(message), Details: []envelope{}}
}

// badRequest answers like ASP.NET model validation: 400 with a problem
// details body.
func badRequest(w http.ResponseWriter, field, msg string) {
	w.Header().Set("Content-Type", "application/problem+json; charset=utf-8")
	w.WriteHeader(http.StatusBadRequest)
	body, _ := json.Marshal(map[string]any{
		"type":   "https://tools.ietf.org/html/rfc7231#section-6.5.1",
		"title":  "One or more validation errors occurred.",
		"status": http.StatusBadRequest,
		"errors": map[string][]string{field: {msg}},
	})
	_, _ = w.Write(body)
}

// decodeObject parses a JSON object body, keeping property names and raw
// values exactly as sent. An empty body gives an empty, non-nil map only
// when allowEmpty is set.
func decodeObject(body []byte, allowEmpty bool) (map[string]json.RawMessage, bool) {
	if len(bytes.TrimSpace(body)) == 0 {
		if allowEmpty {
			return map[string]json.RawMessage{}, true
		}
		return nil, false
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil || m == nil {
		return nil, false
	}
	return m, true
}

// decodeStrings parses a JSON array of strings. An empty body gives nil
// when allowEmpty is set.
func decodeStrings(body []byte, allowEmpty bool) ([]string, bool) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, allowEmpty
	}
	var list []string
	if err := json.Unmarshal(body, &list); err != nil {
		return nil, false
	}
	return list, true
}

// lookupFold finds a property by case-insensitive name.
func lookupFold(m map[string]json.RawMessage, name string) (string, json.RawMessage, bool) {
	if v, ok := m[name]; ok {
		return name, v, true
	}
	for k, v := range m {
		if strings.EqualFold(k, name) {
			return k, v, true
		}
	}
	return "", nil, false
}

// stringProp returns a string-valued property by case-insensitive name.
func stringProp(m map[string]json.RawMessage, name string) string {
	_, raw, ok := lookupFold(m, name)
	if !ok {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return s
}

// queryFold returns a query parameter by case-insensitive name, as ASP.NET
// model binding reads it.
func queryFold(r *http.Request, name string) (string, bool) {
	for k, v := range r.URL.Query() {
		if strings.EqualFold(k, name) && len(v) > 0 {
			return v[0], true
		}
	}
	return "", false
}

// queryInt reads an integer query parameter; ok is false if it is present
// but not an integer.
func queryInt(r *http.Request, name string, def int) (int, bool) {
	v, present := queryFold(r, name)
	if !present || v == "" {
		return def, true
	}
	n, err := strconv.Atoi(v)
	return n, err == nil
}

// queryBool reads a boolean query parameter; ok is false if it is present
// but not a boolean.
func queryBool(r *http.Request, name string, def bool) (bool, bool) {
	v, present := queryFold(r, name)
	if !present || v == "" {
		return def, true
	}
	b, err := strconv.ParseBool(v)
	return b, err == nil
}

// readObject reads the request body as a JSON object, answering 400 (and
// returning false) when it is not one.
func readObject(w http.ResponseWriter, r *http.Request) (map[string]json.RawMessage, bool) {
	body, _ := io.ReadAll(r.Body)
	props, ok := decodeObject(body, false)
	if !ok {
		badRequest(w, "$", "The request body must be a JSON object.")
	}
	return props, ok
}
