# frozen_string_literal: true

# Stands in for the official SDK's "unleash/context" (see lib/forkflag/unleash.rb).
require_relative "../forkflag/unleash/stand_in"
