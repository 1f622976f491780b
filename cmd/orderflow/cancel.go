package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/orderflow/orderflow/httpapi"
)

// cancelCmd is `orderflow order cancel ID`: POST /orders/{id}/cancel. A
// PENDING order is CANCELLED at once (200, as is one cancelled before); a
// PROCESSING one stops at its next stage boundary (202: follow it with
// order watch); a final one is a 409 order-final, printed as the problem.
func cancelCmd(ctx context.Context, c *apiClient, cc clientConfig, args []string, stdout io.Writer) error {
	if len(args) != 1 {
		return errors.New("usage: orderflow order cancel ID")
	}
	if err := c.authenticate(cc); err != nil {
		return err
	}
	a, err := c.do(ctx, "POST", "/orders/"+url.PathEscape(args[0])+"/cancel", nil, nil)
	if err != nil {
		return err
	}
	var v httpapi.OrderView
	if err := c.decode(a, &v, http.StatusOK, http.StatusAccepted); err != nil {
		return err
	}
	if a.status == http.StatusAccepted {
		_, err = fmt.Fprintf(stdout, "order %s is %s: cancel requested, it stops at the next stage (orderflow order watch %s)\n", v.OrderID, v.Status, v.OrderID)
		return err
	}
	_, err = fmt.Fprintf(stdout, "order %s %s\n", v.OrderID, v.Status)
	return err
}
