package webdriver

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// process is a started browser, driver or display server, with the
// processes it starts in turn.
type process struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed once Wait returned
}

func startProcess(cmd *exec.Cmd) (*process, error) {
	ownGroup(cmd)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &process{cmd: cmd, exited: make(chan struct{})}
	go func() {
		cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// startLogged starts cmd with its standard output and error going to
// line, a line at a time, until every process that holds them has ended.
func startLogged(cmd *exec.Cmd, line func(string)) (*process, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = w, w
	p, err := startProcess(cmd)
	w.Close() // the children hold their own copies
	if err != nil {
		r.Close()
		return nil, err
	}
	go func() {
		defer r.Close()
		sc := bufio.NewScanner(r)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			line(sc.Text())
		}
		io.Copy(io.Discard, r) // a line too long: drain, so no writer blocks
	}()
	return p, nil
}

// stop asks the process to end, waits up to grace, then kills it; either
// way it kills what is left of its group (content processes, web
// processes), and waits for the process.
func (p *process) stop(grace time.Duration) {
	terminate(p.cmd)
	select {
	case <-p.exited:
	case <-time.After(grace):
	}
	kill(p.cmd)
	<-p.exited
}

// browserEnv is the environment for a browser or driver whose home, caches
// and runtime files all live in dir, so nothing is left behind and no
// setting of this machine's user applies.
func browserEnv(dir string) []string {
	env := []string{
		"HOME=" + dir,
		"XDG_CONFIG_HOME=" + filepath.Join(dir, "config"),
		"XDG_CACHE_HOME=" + filepath.Join(dir, "cache"),
		"XDG_DATA_HOME=" + filepath.Join(dir, "data"),
		"XDG_RUNTIME_DIR=" + dir,
		"TMPDIR=" + os.TempDir(),
		"LANG=C.UTF-8",
		"NO_AT_BRIDGE=1", // no accessibility bus to look for
	}
	if path, ok := os.LookupEnv("PATH"); ok {
		env = append(env, "PATH="+path)
	}
	return env
}
