package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
)

// Set at link time by the Dockerfile's build args (or any release build):
//
//	go build -ldflags "-X main.version=v1.2.3 -X main.commit=abc123 -X main.date=2026-12-02T12:00:00Z" ./cmd/orderflow
//
// Left empty, they come from the module and VCS stamps that the go command
// writes into every binary (debug.ReadBuildInfo).
var version, commit, date string

// buildInfo is what the binary knows of its own build.
type buildInfo struct {
	Version   string // v1.2.3, a pseudo-version, or "(devel)"
	Revision  string // the VCS commit, "+dirty" when the tree had changes; "" if unknown
	Date      string // the commit's or build's time, RFC 3339; "" if unknown
	GoVersion string
}

// currentBuild is the build of the running binary.
func currentBuild() buildInfo {
	info, _ := debug.ReadBuildInfo()
	return readBuild(info, version, commit, date)
}

// readBuild merges the -ldflags values (which win when set) with the
// go command's stamps in info (nil when the binary has none).
func readBuild(info *debug.BuildInfo, version, commit, date string) buildInfo {
	b := buildInfo{Version: version, Revision: commit, Date: date, GoVersion: runtime.Version()}
	if info == nil {
		if b.Version == "" {
			b.Version = "(devel)"
		}
		return b
	}
	if b.Version == "" {
		b.Version = info.Main.Version
	}
	if b.Version == "" {
		b.Version = "(devel)"
	}
	if info.GoVersion != "" {
		b.GoVersion = info.GoVersion
	}
	var rev, at string
	dirty := false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if b.Revision == "" && rev != "" {
		b.Revision = rev
		if dirty {
			b.Revision += "+dirty"
		}
	}
	if b.Date == "" {
		b.Date = at
	}
	return b
}

// String is the one line of `orderflow version` and `--version`.
func (b buildInfo) String() string {
	s := "orderflow " + b.Version
	if b.Revision != "" {
		s += " commit " + b.Revision
	}
	if b.Date != "" {
		s += " built " + b.Date
	}
	return s + " " + b.GoVersion + " " + runtime.GOOS + "/" + runtime.GOARCH
}

// printVersion writes `orderflow version` and `orderflow --version`.
func printVersion(w io.Writer, b buildInfo) error {
	_, err := fmt.Fprintln(w, b.String())
	return err
}

// registerBuildInfo adds orderflow_build_info{version,revision,goversion}
// 1 to reg, the convention of Prometheus' own binaries: a join on it puts
// the version beside any other series of the process.
func registerBuildInfo(reg prometheus.Registerer, b buildInfo) {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "orderflow_build_info",
		Help:        "Always 1; the labels tell the version, VCS revision and Go version of the running binary.",
		ConstLabels: prometheus.Labels{"version": b.Version, "revision": b.Revision, "goversion": b.GoVersion},
	})
	g.Set(1)
	reg.MustRegister(g)
}
