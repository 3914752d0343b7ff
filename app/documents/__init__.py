"""Model cards, AI Act technical documentation and audit packs; layouts live in document_templates/."""
