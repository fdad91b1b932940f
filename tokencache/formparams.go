package tokencache

import (
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// FormParam is an extra form field sent with every token request of a
// grant (password and refresh_token), such as resource or audience. Its
// value is treated as a secret: it never appears in an error or a log.
type FormParam struct {
	Name, Value string
}

// GrantFormFields are the form fields the grants send themselves. A
// FormParam never replaces one: the names are compared case-insensitively
// (GroupID reads form field names so), and one that matches is not sent.
var GrantFormFields = []string{
	"grant_type", "username", "password", "client_id", "client_secret",
	"refresh_token", "identity_store_id", "scope",
}

// IsGrantFormField reports whether name is, ignoring case, one of
// GrantFormFields.
func IsGrantFormField(name string) bool {
	return slices.ContainsFunc(GrantFormFields, func(f string) bool { return strings.EqualFold(f, name) })
}

// addFormParams adds params to form, after the grant's own fields: a param
// named like a grant field (see IsGrantFormField), or like a field already
// in form, is skipped, so a param can never override what the grant sends.
func addFormParams(form url.Values, params []FormParam) {
	for _, p := range params {
		if p.Name == "" || IsGrantFormField(p.Name) || formHas(form, p.Name) {
			continue
		}
		form.Set(p.Name, p.Value)
	}
}

// formHas reports whether form has a field named name, ignoring case.
func formHas(form url.Values, name string) bool {
	for k := range form {
		if strings.EqualFold(k, name) {
			return true
		}
	}
	return false
}

// formParamFields lists params as key material, in name order (so the
// order they were given in does not change the key), with their count
// first.
func formParamFields(params []FormParam) []string {
	sorted := slices.Clone(params)
	slices.SortFunc(sorted, func(a, b FormParam) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return strings.Compare(a.Value, b.Value)
	})
	out := []string{strconv.Itoa(len(sorted))}
	for _, p := range sorted {
		out = append(out, p.Name, p.Value)
	}
	return out
}
