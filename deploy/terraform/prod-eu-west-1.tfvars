# Multi-region production, region eu-west-1 (docs/multi-region.md): apply the
# us-east-1 stack first (it makes the global table), then eu-west-1's, each
# in its own state:
#   terraform workspace select -or-create prod-eu-west-1
#   terraform apply -var-file=prod-eu-west-1.tfvars
env    = "prod"
region = "eu-west-1"

queue_name   = "order-queue"
dlq_name     = "order-queue-dlq"
table_name   = "Orders"
max_receives = 5

visibility_timeout_seconds = 30
point_in_time_recovery     = true
deletion_protection        = true

# The table is the replica that the us-east-1 stack makes.
table_home_region = "us-east-1"

# One name for clients in every region, answered by latency among the
# healthy regions; this region's own host is what its health check probes.
dns_zone_id       = "Z0123456789EXAMPLE"
api_hostname      = "api.orderflow.example.com"
regional_hostname = "api.eu-west-1.orderflow.example.com"
load_balancer = {
  dns_name = "orderflow-eu-west-1-0123456789.eu-west-1.elb.amazonaws.com"
  zone_id  = "Z32O12XQLNTSW2"
}

tags = {
  team        = "orders"
  cost-center = "commerce"
}
