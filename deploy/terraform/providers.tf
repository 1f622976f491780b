# On AWS the provider takes credentials from the standard chain (environment,
# profile, SSO, instance role). dev.tfvars points it at LocalStack instead.
provider "aws" {
  region = var.region

  access_key = var.aws_access_key
  secret_key = var.aws_secret_key

  skip_credentials_validation = var.skip_credentials_validation
  skip_metadata_api_check     = var.skip_metadata_api_check
  skip_requesting_account_id  = var.skip_requesting_account_id

  # Null endpoints (the default) mean the real AWS endpoints.
  endpoints {
    dynamodb = var.aws_endpoint_url
    iam      = var.aws_endpoint_url
    route53  = var.aws_endpoint_url
    sqs      = var.aws_endpoint_url
    sts      = var.aws_endpoint_url
  }

  default_tags {
    tags = merge({ app = "orderflow", env = var.env }, var.tags)
  }
}
