package live

import "net"

// FreePort returns a TCP port of 127.0.0.1 that was free a moment ago, for
// a listener of a test or of the load benchmark: test packages run in
// parallel, and two runs of the suite on one machine must not collide on
// fixed ports. Another process could take the port before it is bound;
// that is unlikely, and shows up as a bind error.
func FreePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic("no free port: " + err.Error())
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
