package cli

import (
	"flag"
	"slices"
	"testing"
	"time"
)

func TestParseArgs(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantPos []string
		want    parsed
		wantErr bool
	}{
		{name: "flag after positional", args: []string{"general", "--json"}, wantPos: []string{"general"}, want: parsed{json: true}},
		{name: "flag before positional", args: []string{"--json", "general"}, wantPos: []string{"general"}, want: parsed{json: true}},
		{name: "single dash", args: []string{"-json", "general"}, wantPos: []string{"general"}, want: parsed{json: true}},
		{name: "value after positional", args: []string{"general", "--limit", "5", "--json"}, wantPos: []string{"general"}, want: parsed{json: true, limit: 5}},
		{name: "value with equals", args: []string{"general", "--limit=5"}, wantPos: []string{"general"}, want: parsed{limit: 5}},
		{name: "positionals around flags", args: []string{"general", "--json", "hola", "--limit", "3", "que", "tal"},
			wantPos: []string{"general", "hola", "que", "tal"}, want: parsed{json: true, limit: 3}},
		{name: "double dash ends flags", args: []string{"general", "--", "-text", "--json"}, wantPos: []string{"general", "-text", "--json"}},
		{name: "flags before double dash", args: []string{"--json", "general", "--", "--limit", "2"}, wantPos: []string{"general", "--limit", "2"}, want: parsed{json: true}},
		{name: "dash is positional", args: []string{"general", "-"}, wantPos: []string{"general", "-"}},
		{name: "value starting with dash", args: []string{"--name", "-x", "general"}, wantPos: []string{"general"}, want: parsed{name: "-x"}},
		{name: "double dash as a value", args: []string{"--name", "--", "general"}, wantPos: []string{"general"}, want: parsed{name: "--"}},
		{name: "home anywhere, last wins", args: []string{"--home", "/a", "general", "--home", "/b"}, wantPos: []string{"general"}, want: parsed{home: "/b"}},
		{name: "bool flag set false", args: []string{"--json=false", "general"}, wantPos: []string{"general"}},
		{name: "no arguments", args: nil},
		{name: "unknown flag", args: []string{"general", "--nope"}, wantErr: true},
		{name: "negative number is a flag", args: []string{"general", "-5"}, wantErr: true},
		{name: "missing value", args: []string{"general", "--limit"}, wantErr: true},
		{name: "bad value", args: []string{"general", "--limit", "many"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got parsed
			fs := got.flagSet()
			pos, err := parseArgs(fs, tt.args)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("parseArgs(%q) succeeded: %q %+v", tt.args, pos, got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(pos, tt.wantPos) || got != tt.want {
				t.Errorf("parseArgs(%q) = %q %+v, want %q %+v", tt.args, pos, got, tt.wantPos, tt.want)
			}
		})
	}
}

func TestParseToCommand(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantRest []string
		want     parsed
	}{
		{name: "no command", args: []string{"--home", "/a"}, want: parsed{home: "/a"}},
		{name: "global flag first", args: []string{"--home", "/a", "log", "general", "--json"}, wantRest: []string{"log", "general", "--json"}, want: parsed{home: "/a"}},
		{name: "command first", args: []string{"log", "--home", "/a"}, wantRest: []string{"log", "--home", "/a"}},
		{name: "double dash", args: []string{"--", "log"}, wantRest: []string{"log"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got parsed
			rest, err := parseToCommand(got.flagSet(), tt.args)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(rest, tt.wantRest) || got != tt.want {
				t.Errorf("parseToCommand(%q) = %q %+v, want %q %+v", tt.args, rest, got, tt.wantRest, tt.want)
			}
		})
	}
}

type parsed struct {
	json       bool
	limit      int
	name, home string
}

func (p *parsed) flagSet() *flag.FlagSet {
	fs := newFlagSet("test")
	fs.BoolVar(&p.json, "json", false, "")
	fs.IntVar(&p.limit, "limit", 0, "")
	fs.StringVar(&p.name, "name", "", "")
	homeFlag(fs, &p.home)
	return fs
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration // 0: an error
	}{
		{"24h", 24 * time.Hour},
		{"90m", 90 * time.Minute},
		{"7d", 7 * 24 * time.Hour},
		{"0h", 0},
		{"-1h", 0},
		{"0d", 0},
		{"-2d", 0},
		{"1.5d", 0},
		{"99999999d", 0},
		{"soon", 0},
		{"", 0},
	}
	for _, tt := range tests {
		got, err := parseDuration(tt.in)
		if tt.want == 0 {
			if err == nil {
				t.Errorf("parseDuration(%q) = %v, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("parseDuration(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}
