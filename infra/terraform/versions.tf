terraform {
  # 1.5+: check blocks and lifecycle pre/postconditions are used below.
  required_version = ">= 1.5.0"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 6.0"
    }
    google-beta = {
      source  = "hashicorp/google-beta"
      version = "~> 6.0"
    }
    archive = {
      source  = "hashicorp/archive"
      version = "~> 2.4"
    }
  }

  # State lives in a GCS bucket you create once (see README.md); the bucket and prefix are given at
  # init time: terraform init -backend-config="bucket=STATE_BUCKET" -backend-config="prefix=gemini-fanout".
  backend "gcs" {}
}

provider "google" {
  project = var.project_id
  region  = var.region
}

# Declared so beta-only arguments can be adopted resource by resource (`provider = google-beta`);
# every resource here is GA today.
provider "google-beta" {
  project = var.project_id
  region  = var.region
}
