package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/orderflow/orderflow/httpapi"
)

// loginFlags are the flags of login.
type loginFlags struct {
	user          string
	passwordStdin bool
}

func (f *loginFlags) define(fs *flag.FlagSet) {
	fs.StringVar(&f.user, "user", "", "the user id to log in as (required)")
	fs.BoolVar(&f.passwordStdin, "password-stdin", false, "read the password from the first line of stdin")
}

// loginCmd is `orderflow login --user U [--password-stdin]`: it gets a
// token from POST /login and keeps it in the token store for ORDERFLOW_URL.
// A dev-login server needs no password, so none is asked for first; when
// the server wants one, it is read from a terminal without echo, or with
// --password-stdin from the first line of stdin (for scripts).
func loginCmd(ctx context.Context, cc clientConfig, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	var f loginFlags
	fl := newFlagSet("login", stderr, f.define)
	user, fromStdin := &f.user, &f.passwordStdin
	if err := fl.Parse(args); err != nil {
		return err
	}
	if *user == "" || fl.NArg() > 0 {
		return errors.New("usage: orderflow login --user U [--password-stdin]")
	}
	req := httpapi.LoginRequest{UserID: *user}
	if *fromStdin {
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("read the password from stdin: %w", err)
		}
		req.Password = strings.TrimRight(line, "\r\n")
	}
	c := newAPIClient(cc, stderr)
	res, err := c.login(ctx, req)
	var pe *problemError
	if errors.As(err, &pe) && pe.is("invalid-credentials") && !*fromStdin && isTerminal(stdin) {
		fmt.Fprintf(stderr, "password for %s at %s: ", *user, cc.URL)
		pw, rerr := term.ReadPassword(int(stdin.(*os.File).Fd()))
		fmt.Fprintln(stderr)
		if rerr != nil {
			return fmt.Errorf("read the password: %w", rerr)
		}
		req.Password = string(pw)
		res, err = c.login(ctx, req)
	}
	if err != nil {
		return err
	}
	exp := time.Now().Add(time.Duration(res.ExpiresIn) * time.Second).UTC().Truncate(time.Second)
	if err := (tokenStore{cc.TokenDir}).save(cc.URL, storedToken{User: *user, AccessToken: res.AccessToken, ExpiresAt: exp}); err != nil {
		return fmt.Errorf("keep the token: %w", err)
	}
	_, err = fmt.Fprintf(stdout, "logged in to %s as %s until %s\n", cc.URL, *user, exp.Format(time.RFC3339))
	return err
}

func (c *apiClient) login(ctx context.Context, req httpapi.LoginRequest) (httpapi.LoginResponse, error) {
	var res httpapi.LoginResponse
	a, err := c.do(ctx, "POST", "/login", nil, req)
	if err == nil {
		err = c.decode(a, &res, 200)
	}
	if err == nil && res.AccessToken == "" {
		err = errors.New("the server's login answer has no access_token")
	}
	return res, err
}
