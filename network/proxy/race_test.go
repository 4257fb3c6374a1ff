//go:build race

package proxy

// raceDetector says that the race detector runs, and its shadow memory
// with it: the proxy's memory then says nothing of its own.
const raceDetector = true
