package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

const orderUsage = "usage: orderflow order place|watch|list|cancel ... (see orderflow help)"

// orderCmd dispatches `orderflow order SUBCOMMAND`.
func orderCmd(ctx context.Context, cc clientConfig, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New(orderUsage)
	}
	sub, args := args[0], args[1:]
	c := newAPIClient(cc, stderr)
	switch sub {
	case "place":
		return placeCmd(ctx, c, cc, args, stdout, stderr)
	case "watch":
		return watchCmd(ctx, c, cc, args, stdout)
	case "list":
		return listCmd(ctx, c, cc, args, stdout, stderr)
	case "cancel":
		return cancelCmd(ctx, c, cc, args, stdout)
	}
	return fmt.Errorf("unknown order command %q\n%s", sub, orderUsage)
}

// authenticate gives c the stored token for the api, or the error that
// says to log in.
func (c *apiClient) authenticate(cc clientConfig) error {
	t, err := (tokenStore{cc.TokenDir}).load(cc.URL, time.Now())
	if err != nil {
		return err
	}
	c.token = t.AccessToken
	return nil
}
