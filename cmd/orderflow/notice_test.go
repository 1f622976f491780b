package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

var updateNotice = flag.Bool("update-notice", false, "rewrite ../../NOTICE from the module graph")

// linkedModule is a module whose packages are linked into the binary.
type linkedModule struct {
	Path, Version, Dir string
}

// linkedModules lists the modules of every package the orderflow binary
// is built from (go list -deps), the main module and the standard library
// left out.
func linkedModules(t *testing.T) []linkedModule {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", "-f", "{{with .Module}}{{if not .Main}}{{.Path}}\t{{.Version}}\t{{.Dir}}{{end}}{{end}}", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	var ms []linkedModule
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(l, "\t")
		if len(f) != 3 {
			continue
		}
		m := linkedModule{f[0], f[1], f[2]}
		if !slices.Contains(ms, m) {
			ms = append(ms, m)
		}
	}
	slices.SortFunc(ms, func(a, b linkedModule) int { return strings.Compare(a.Path, b.Path) })
	return ms
}

// licenceFiles are the names a module's licence goes by, the first found
// being the module's licence; the others (a bundled C library's, say) are
// named in NOTICE beside it.
var licenceFile = regexp.MustCompile(`(?i)^(licen[cs]e|copying|unlicense)([.-].*)?$`)

// classify names the licence of a licence text by its SPDX identifier, or
// "" when the text is none of those the project accepts.
func classify(text string) string {
	t := strings.Join(strings.Fields(text), " ")
	has := func(s ...string) bool {
		for _, x := range s {
			if !strings.Contains(t, x) {
				return false
			}
		}
		return true
	}
	switch {
	case has("Apache License", "Version 2.0"):
		return "Apache-2.0"
	case has("Mozilla Public License", "2.0"):
		return "MPL-2.0"
	case has("Permission is hereby granted, free of charge, to any person obtaining a copy"):
		return "MIT"
	case has("Permission to use, copy, modify, and/or distribute this software for any purpose"),
		has("Permission to use, copy, modify, and distribute this software for any purpose with or without fee is hereby granted"):
		return "ISC"
	case has("Redistribution and use in source and binary forms", "Neither the name"),
		has("Redistribution and use in source and binary forms", "names of its contributors may be used"):
		return "BSD-3-Clause"
	case has("Redistribution and use in source and binary forms"):
		return "BSD-2-Clause"
	case has("SQLite Is Public Domain"):
		return "public domain"
	}
	return ""
}

// moduleLicence is the SPDX id of a module's licence and its other
// licence files, or an error naming what is wrong.
func moduleLicence(m linkedModule) (id string, others []string, err error) {
	entries, err := os.ReadDir(m.Dir)
	if err != nil {
		return "", nil, err
	}
	var files []string
	for _, e := range entries {
		if !e.IsDir() && licenceFile.MatchString(e.Name()) {
			files = append(files, e.Name())
		}
	}
	if len(files) == 0 {
		return "", nil, fmt.Errorf("%s %s has no licence file in %s", m.Path, m.Version, m.Dir)
	}
	// LICENSE before LICENSE.txt before LICENSE-SQLITE.
	slices.SortFunc(files, func(a, b string) int { return len(a) - len(b) })
	b, err := os.ReadFile(filepath.Join(m.Dir, files[0]))
	if err != nil {
		return "", nil, err
	}
	if id = classify(string(b)); id == "" {
		return "", nil, fmt.Errorf("%s %s: the licence in %s is not one this project accepts (MIT, Apache-2.0, BSD, ISC, MPL-2.0): read it, and add it to classify only if it may be redistributed in the binary", m.Path, m.Version, files[0])
	}
	for _, f := range files[1:] {
		if strings.HasSuffix(f, ".md") || strings.HasSuffix(f, ".txt") || !strings.Contains(f, "-") {
			others = append(others, f)
			continue
		}
		b, err := os.ReadFile(filepath.Join(m.Dir, f))
		if err != nil {
			return "", nil, err
		}
		other := classify(string(b))
		if other == "" {
			other = "see the file"
		}
		others = append(others, f+": "+other)
	}
	return id, others, nil
}

// assets are the third-party files that the binary serves, with the
// module that ships them.
var assets = []struct{ name, module, licence, where string }{
	{"Swagger UI (swagger-ui-dist)", "github.com/swaggo/files/v2", "Apache-2.0", "served at /docs"},
}

// notice is the NOTICE file: the third-party software in the binary.
func notice(t *testing.T, ms []linkedModule) (string, []error) {
	var b strings.Builder
	b.WriteString("orderflow\nCopyright (c) 2026 The orderflow authors. MIT License: see LICENSE.\n\n")
	b.WriteString("The orderflow binary includes the third-party software below, each under its\n")
	b.WriteString("own licence, whose text is in the module named (go mod download -json MODULE\n")
	b.WriteString("prints where). This file is generated from the module graph by\n")
	b.WriteString("cmd/orderflow's TestNotice (go test ./cmd/orderflow -run TestNotice -update-notice).\n\n")
	b.WriteString("Web assets served by the api:\n\n")
	version := map[string]string{}
	for _, m := range ms {
		version[m.Path] = m.Version
	}
	var errs []error
	for _, a := range assets {
		v, ok := version[a.module]
		if !ok {
			errs = append(errs, fmt.Errorf("asset %s: its module %s is not linked into the binary any more", a.name, a.module))
		}
		fmt.Fprintf(&b, "  %s, %s, from %s %s: %s\n", a.name, a.where, a.module, v, a.licence)
	}
	b.WriteString("\nGo modules linked into the binary:\n\n")
	for _, m := range ms {
		id, others, err := moduleLicence(m)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		fmt.Fprintf(&b, "  %s %s: %s", m.Path, m.Version, id)
		if len(others) > 0 {
			fmt.Fprintf(&b, " (also %s)", strings.Join(others, "; "))
		}
		b.WriteString("\n")
	}
	return b.String(), errs
}

// TestNotice keeps NOTICE true to the binary: every module linked into it
// with its licence, and none whose licence is unknown.
func TestNotice(t *testing.T) {
	ms := linkedModules(t)
	if len(ms) < 10 {
		t.Fatalf("go list found %d modules: %v", len(ms), ms)
	}
	got, errs := notice(t, ms)
	for _, err := range errs {
		t.Error(err)
	}
	if *updateNotice {
		if err := os.WriteFile("../../NOTICE", []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile("../../NOTICE")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(want, []byte(got)) {
		t.Errorf("NOTICE is not what the module graph gives; run go test ./cmd/orderflow -run TestNotice -update-notice and review the diff. It should be:\n%s", got)
	}
}

// A module with no licence file, or one the classifier does not know,
// fails the notice.
func TestNoticeRefusesUnknownLicences(t *testing.T) {
	dir := t.TempDir()
	none := linkedModule{"example.com/none", "v1.0.0", filepath.Join(dir, "none")}
	odd := linkedModule{"example.com/odd", "v1.0.0", filepath.Join(dir, "odd")}
	mit := linkedModule{"example.com/mit", "v1.0.0", filepath.Join(dir, "mit")}
	for _, d := range []string{none.Dir, odd.Dir, mit.Dir} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(odd.Dir, "LICENSE"), []byte("You may use this software only on Tuesdays."), 0o644)
	os.WriteFile(filepath.Join(mit.Dir, "LICENSE.txt"), []byte("MIT License\n\nPermission is hereby granted, free of charge, to any person obtaining a copy\nof this software"), 0o644)
	if _, _, err := moduleLicence(none); err == nil || !strings.Contains(err.Error(), "no licence file") {
		t.Errorf("no licence: %v", err)
	}
	if _, _, err := moduleLicence(odd); err == nil || !strings.Contains(err.Error(), "not one this project accepts") {
		t.Errorf("unknown licence: %v", err)
	}
	if id, _, err := moduleLicence(mit); err != nil || id != "MIT" {
		t.Errorf("MIT: %q %v", id, err)
	}
	if _, errs := notice(t, []linkedModule{mit, odd}); len(errs) != 1+len(assets) {
		t.Errorf("notice of an MIT and an unknown module without the assets' modules: %v, want %d errors", errs, 1+len(assets))
	}
}
