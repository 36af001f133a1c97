# frozen_string_literal: true

require_relative "page"
require_relative "explain_form"
require_relative "explain_trace"

module Forkflag
  class Web
    # "/explain": a form (flag, user id, session id, remote address,
    # properties) and, once sent, the explanation of the answer
    # ({Client#explain}): the reason, the strategy that matched, each
    # strategy's constraints with the context value read and the result,
    # segments, the rollout's bucket against its percentage, how the variant
    # was chosen, and the explanation's own text. Counts no metrics.
    class ExplainPage < Page
      # @return [String]
      def title
        "Explain"
      end

      # @return [Integer] 400 when the form could not be read
      def status
        explanation
        @problems.empty? ? 200 : 400
      end

      # @return [Markup]
      def content
        explanation
        [tag("h1", "Explain an answer"),
         tag("p", "Why does a context get the answer it gets? This evaluates in this process " \
                  "and counts nothing.", class: "muted"),
         form_element, problems, @explanation && ExplainTrace.new(request).render(@explanation)]
      end

      private

      def form
        @form ||= ExplainForm.new(request)
      end

      # The explanation, or nil (the form not sent, or unreadable).
      def explanation
        return @explanation if defined?(@explanation)

        @problems = form.errors.dup
        @explanation = nil
        return nil unless form.submitted? && form.valid?

        @explanation = client.explain(form.flag, form.context)
      rescue ArgumentError, TypeError => e
        @problems << "the context cannot be used: #{e.message}"
        @explanation = nil
      end

      def form_element
        values = form.values
        fields = [
          label("flag", "Flag"),
          void("input", type: "text", name: "flag", id: "flag", value: form.flag, list: "flag-names", required: true),
          label("user_id", "User id"), text_input("user_id", values),
          label("session_id", "Session id"), text_input("session_id", values),
          label("remote_address", "Remote address"), text_input("remote_address", values),
          label("properties", "Properties"),
          tag("textarea", values["properties"], name: "properties", id: "properties",
                                                placeholder: "one key=value per line, e.g.\nplan=pro"),
          tag("div", tag("button", "Explain", type: "submit", id: "explain"), class: "actions")
        ]
        tag("form", [fields, names_list], method: "get", action: request.href("/explain"), class: "explain")
      end

      def label(name, text)
        tag("label", text, for: name)
      end

      def text_input(name, values)
        void("input", type: "text", name: name, id: name, value: values[name])
      end

      def names_list
        tag("datalist", client.flags.map { |f| tag("option", nil, value: f[:name]) }, id: "flag-names")
      end

      def problems
        return nil if @problems.empty?

        tag("div", [tag("strong", "The form could not be used:"), lines(@problems)], class: "message",
                                                                                     id: "problems")
      end
    end
  end
end
