// Command udpecho sends every UDP datagram that reaches the address it is
// given back to its sender. The network tests run it inside instances,
// whose images have no UDP server of their own.
package main

import (
	"fmt"
	"net"
	"os"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: udpecho [HOST]:PORT")
		os.Exit(2)
	}
	c, err := net.ListenPacket("udp", os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	buf := make([]byte, 65536)
	for {
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if _, err := c.WriteTo(buf[:n], from); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}
}
