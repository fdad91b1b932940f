// Package live starts what the end-to-end tests and the load benchmark
// (bench/loadbench, not a test) run against: the GroupID simulator on a
// free loopback port with its CA file, and Caddy as a child process of the
// built binary. It returns errors instead of failing a test; package
// testenv wraps it for tests and adds Eventually on top of Poll.
package live
