// Package groupidsim is an in-process stand-in for Netwrix Directory Manager
// ("GroupID"): its Security Service token endpoint and a slice of its Data
// Service User and Group APIs, served from one HTTP site the way a real IIS
// installation serves them.
//
// The simulator follows the facts in the project's GroupID API notes. Points
// that the vendor does not document and that were inferred from the server
// stack (IdentityServer for tokens, ASP.NET JwtBearer for the Data Service)
// are switchable through [Config], so tests can check that the sidecar copes
// with either behaviour.
//
// Besides the emulated API the site offers control endpoints under /_sim/
// (counters, faults, revocation, password change) for scripts, and Go
// methods on [Server] for the same purposes in tests.
package groupidsim
