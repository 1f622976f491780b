# Multi-region (docs/multi-region.md): each region's stack adds its region
# to one latency-routed name. Route 53 answers a client with the region of
# lowest latency among those whose health check passes; a region whose
# /ready fails (its store or queue unreachable, or the region down) leaves
# the answers within about 30 s (3 failures, 10 s apart) plus the record's
# TTL of the alias (60 s at the resolvers).

locals {
  dns = var.dns_zone_id != null
}

resource "aws_route53_health_check" "api" {
  count = local.dns ? 1 : 0

  fqdn              = var.regional_hostname
  type              = "HTTPS"
  port              = 443
  resource_path     = "/ready"
  request_interval  = 10
  failure_threshold = 3
  measure_latency   = true
  # Checkers in three regions must agree (Route 53's default is all of
  # them; three keeps the check independent of any one region).
  regions = ["us-east-1", "eu-west-1", "ap-southeast-1"]

  tags = { Name = "orderflow-api-${var.region}" }

  lifecycle {
    precondition {
      condition     = var.regional_hostname != null && var.api_hostname != null && var.load_balancer != null
      error_message = "dns_zone_id needs api_hostname, regional_hostname and load_balancer."
    }
  }
}

resource "aws_route53_record" "api" {
  count = local.dns ? 1 : 0

  zone_id        = var.dns_zone_id
  name           = var.api_hostname
  type           = "A"
  set_identifier = var.region

  latency_routing_policy {
    region = var.region
  }

  health_check_id = aws_route53_health_check.api[0].id

  alias {
    name                   = var.load_balancer.dns_name
    zone_id                = var.load_balancer.zone_id
    evaluate_target_health = true
  }
}
